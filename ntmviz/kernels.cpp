// The NTM's step without its matrix products, forward and backward, for every row of a
// batch: the memory step (the heads' activations, content focus, interpolation, circular
// shift, sharpening, read, and the write: erase then add) and an LSTM cell's pointwise part.
// The same maths as fused.torch_memory_forward / torch_memory_backward and
// torch_lstm_forward / torch_lstm_backward (and the readable reference in addressing.py,
// memory.py, heads.py), written as loops over one row at a time, so a memory step is two
// passes over each row's memory instead of some fifty tensor ops, each dispatched from
// Python. Built and loaded by ntmviz/native.py (ctypes).
//
// Layouts (row-major, contiguous): P rows, H = R + W heads (read heads first), N slots,
// M word width, S shifts (offsets -S/2 .. S/2), Z = H*M + 3H + H*S + 2W*M raw numbers per
// row, in heads.head_sizes order: key H*M | beta H | gate H | shift H*S | gamma H |
// erase W*M | add W*M.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <omp.h>

namespace {

constexpr double EPS = 1e-8;  // addressing.EPS

// Compiled with -ffast-math, which assumes no infinities (and divides by reciprocal estimates that
// turn x / inf into NaN): so no exp here may overflow, and the norms below, whose squares can pass
// float's range in a diverging model, are summed and multiplied in double.
// sigmoid and tanh through exp(-|x|) <= 1, which the compiler vectorises (glibc's tanhf is a
// scalar call per number)
template <typename T> inline T sigmoid(T x) {
    T e = std::exp(-std::abs(x));
    return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}
template <typename T> inline T tanh_(T x) {
    T e = std::exp(T(-2) * std::abs(x));
    return std::copysign((T(1) - e) / (T(1) + e), x);
}
// torch's softplus: linear above 20
template <typename T> inline T softplus(T x) { return x > T(20) ? x : std::log1p(std::exp(x)); }

template <typename T> void softmax(const T* x, T* out, int64_t n, T scale = T(1)) {
    // the scaled inputs are stored, rounded, before their maximum is taken and subtracted: a
    // multiply fused with the subtraction would leave a rounding error above 0, which exp makes
    // inf when the scale is huge (a diverging model)
    for (int64_t i = 0; i < n; ++i) out[i] = scale * x[i];
    T top = out[0];
    for (int64_t i = 1; i < n; ++i) top = std::max(top, out[i]);
    T sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += (out[i] = std::exp(out[i] - top));
    for (int64_t i = 0; i < n; ++i) out[i] /= sum;
}

// y = softmax(x): dx = y * (dy - <dy, y>)
template <typename T> void softmax_backward(const T* dy, const T* y, T* dx, int64_t n) {
    T dot = 0;
    for (int64_t i = 0; i < n; ++i) dot += dy[i] * y[i];
    for (int64_t i = 0; i < n; ++i) dx[i] = y[i] * (dy[i] - dot);
}

// out[0 .. n + 2 half) = x(-half) .. x(n - 1 + half), indices mod n (half <= n)
template <typename T> void wrapped(const T* x, int64_t n, int64_t half, T* out) {
    for (int64_t i = 0; i < half; ++i) out[i] = x[n - half + i];
    std::copy(x, x + n, out + half);
    for (int64_t i = 0; i < half; ++i) out[half + n + i] = x[i];
}

// The memory step is compiled twice: for any width M, and for M = FIXED_WIDTH (every family's
// default, config.py) known when compiling (the template argument MC; 0 for any). With M known,
// the loops over a slot's M numbers are unrolled and their partial vectors and sums stay in
// registers: the copy task's step at 128 rows ran 1.4-1.5x faster than with M read at run time.
constexpr int FIXED_WIDTH = 20;

struct Dims {
    int64_t H, R, N, M, S;
    int64_t first, last;  // the rows [first, last) this call computes (one thread's share)
    int64_t W() const { return H - R; }
    int64_t Z() const { return H * M + 3 * H + H * S + 2 * W() * M; }
};

// |key_h| [H] and |slot_n| [N] (each with EPS under the root) and their cosines [H, N]; squares [N] is room.
template <typename T, int MC>
void cosines(const Dims& d, const T* key, const T* mem, T* key_norm, T* slot_norm, T* cosine, double* squares) {
    const int64_t H = d.H, N = d.N, M = MC ? MC : d.M;
    for (int64_t h = 0; h < H; ++h) {
        double s = 0;
        for (int64_t m = 0; m < M; ++m) s += double(key[h * M + m]) * key[h * M + m];
        key_norm[h] = T(std::sqrt(s + EPS));
    }
    // slot by slot the sums (over M); then the roots and divisions vectorised over the slots
    for (int64_t n = 0; n < N; ++n) {
        const T* slot = mem + n * M;
        double s = 0;
        for (int64_t m = 0; m < M; ++m) s += double(slot[m]) * slot[m];
        squares[n] = s;
        for (int64_t h = 0; h < H; ++h) {
            const T* k = key + h * M;
            T dot = 0;
            for (int64_t m = 0; m < M; ++m) dot += k[m] * slot[m];
            cosine[h * N + n] = dot;
        }
    }
    for (int64_t n = 0; n < N; ++n) slot_norm[n] = T(std::sqrt(squares[n] + EPS));
    for (int64_t h = 0; h < H; ++h) {
        const double kn = key_norm[h];
        for (int64_t n = 0; n < N; ++n) cosine[h * N + n] = T(cosine[h * N + n] / (kn * slot_norm[n]));
    }
}

// Loops over a row's slots, each as a function of its own whose pointers are __restrict__: the
// compiler may then keep a [M] accumulator (read, g_key, g_erase, g_add) in registers across the
// slots instead of storing and reloading it, which with M = 20 (a vector and a partial one) costs
// a stalled store forward per slot. Each number is summed in the same order as slot by slot.

// rd[h] += sum_n w[h, n] slot_n, h < R
template <typename T, int MC>
void read_slots(int64_t R, int64_t N, int64_t M_, const T* __restrict__ mem, const T* __restrict__ w,
                T* __restrict__ rd) {
    const int64_t M = MC ? MC : M_;
    for (int64_t h = 0; h < R; ++h)
        for (int64_t n = 0; n < N; ++n) {
            const T wn = w[h * N + n];
            for (int64_t m = 0; m < M; ++m) rd[h * M + m] += wn * mem[n * M + m];
        }
}

// one write head: out = mem (1 - w e) + w a
template <typename T, int MC>
void write_one(int64_t N, int64_t M_, const T* __restrict__ mem, const T* __restrict__ w, const T* __restrict__ e,
               const T* __restrict__ a, T* __restrict__ out) {
    const int64_t M = MC ? MC : M_;
    for (int64_t n = 0; n < N; ++n) {
        const T wn = w[n];
        for (int64_t m = 0; m < M; ++m) out[n * M + m] = mem[n * M + m] * (T(1) - wn * e[m]) + wn * a[m];
    }
}

// write_one backward: gm = gin (1 - w e); g_w += <gin, a - slot e> per slot; g_add += w gin; g_erase -= w gin slot
template <typename T, int MC>
void write_one_backward(int64_t N, int64_t M_, const T* __restrict__ mem, const T* __restrict__ gin,
                        const T* __restrict__ w, const T* __restrict__ e, const T* __restrict__ a, T* __restrict__ gm,
                        T* __restrict__ g_w, T* __restrict__ ga, T* __restrict__ ge) {
    const int64_t M = MC ? MC : M_;
    for (int64_t n = 0; n < N; ++n) {
        const T wn = w[n];
        T acc = 0;
        for (int64_t m = 0; m < M; ++m) {
            const T gi = gin[n * M + m], others = gi * mem[n * M + m];
            gm[n * M + m] = gi * (T(1) - wn * e[m]);
            acc += a[m] * gi - others * e[m];
            ga[m] += wn * gi;
            ge[m] -= others * wn;
        }
        g_w[n] += acc;
    }
}

// the reads backward, after the write's: g_w[h, n] += <gr_h, slot_n>; gm_n += w[h, n] gr_h
template <typename T, int MC>
void read_backward(int64_t R, int64_t N, int64_t M_, const T* __restrict__ mem, const T* __restrict__ gr,
                   const T* __restrict__ w, T* __restrict__ gm, T* __restrict__ g_w) {
    const int64_t M = MC ? MC : M_;
    for (int64_t h = 0; h < R; ++h)
        for (int64_t n = 0; n < N; ++n) {
            const T wn = w[h * N + n];
            T acc = 0;
            for (int64_t m = 0; m < M; ++m) {
                acc += gr[h * M + m] * mem[n * M + m];
                gm[n * M + m] += wn * gr[h * M + m];
            }
            g_w[h * N + n] += acc;
        }
}

// the cosines backward into the memory: gm_n += sum_h g_dot[h, n] k_h - slot_n shrink_n; g_key[h] += sum_n g_dot[h, n] slot_n
template <typename T, int MC>
void cosine_backward(int64_t H, int64_t N, int64_t M_, const T* __restrict__ mem, const T* __restrict__ k,
                     const T* __restrict__ g_dot, const T* __restrict__ shrink, T* __restrict__ gm,
                     T* __restrict__ g_key) {
    const int64_t M = MC ? MC : M_;
    for (int64_t n = 0; n < N; ++n) {
        for (int64_t m = 0; m < M; ++m) gm[n * M + m] -= mem[n * M + m] * shrink[n];
        for (int64_t h = 0; h < H; ++h)
            for (int64_t m = 0; m < M; ++m) gm[n * M + m] += g_dot[h * N + n] * k[h * M + m];
    }
    for (int64_t h = 0; h < H; ++h)
        for (int64_t n = 0; n < N; ++n)
            for (int64_t m = 0; m < M; ++m) g_key[h * M + m] += g_dot[h * N + n] * mem[n * M + m];
}

template <typename T, int MC>
void memory_forward(const Dims d, const T* raw, const T* memory, const T* previous,
                  T* weights, T* reads, T* new_memory, T* key, T* beta, T* gate, T* shift, T* gamma, T* erase,
                  T* add, T* content, T* gated, T* shifted, T* key_norms, T* slot_norms, T* cosines_out) {
    const int64_t H = d.H, R = d.R, W = d.W(), N = d.N, M = MC ? MC : d.M, S = d.S, Z = d.Z(), half = S / 2;
    std::vector<T> logs(N), padded(N + S);
    std::vector<double> squares(N);
    for (int64_t p = d.first; p < d.last; ++p) {
        const T* r = raw + p * Z;
        const T* mem = memory + p * N * M;
        const T* prev = previous + p * H * N;
        T *k = key + p * H * M, *b = beta + p * H, *g = gate + p * H, *s = shift + p * H * S, *y = gamma + p * H;
        T *e = erase + p * W * M, *a = add + p * W * M;
        T *c = content + p * H * N, *gd = gated + p * H * N, *sh = shifted + p * H * N, *w = weights + p * H * N;

        // activations
        const T* rb = r + H * M;
        const T* rg = rb + H;
        const T* rs = rg + H;
        const T* ry = rs + H * S;
        const T* re = ry + H;
        const T* ra = re + W * M;
        for (int64_t i = 0; i < H * M; ++i) k[i] = r[i];
        for (int64_t h = 0; h < H; ++h) {
            b[h] = softplus(rb[h]);
            g[h] = sigmoid(rg[h]);
            softmax(rs + h * S, s + h * S, S);
            y[h] = T(1) + softplus(ry[h]);
        }
        for (int64_t i = 0; i < W * M; ++i) {
            e[i] = sigmoid(re[i]);
            a[i] = tanh_(ra[i]);
        }

        // addressing, head by head
        T* cosine = cosines_out + p * H * N;
        cosines<T, MC>(d, k, mem, key_norms + p * H, slot_norms + p * N, cosine, squares.data());
        for (int64_t h = 0; h < H; ++h) {
            T *ch = c + h * N, *gh = gd + h * N, *sh_h = sh + h * N;
            const T* ph = prev + h * N;
            softmax(cosine + h * N, ch, N, b[h]);
            for (int64_t n = 0; n < N; ++n) gh[n] = ph[n] + g[h] * (ch[n] - ph[n]);
            // shifted(i) = sum_j shift_j gated(i - (j - half)): a wrapped copy spares the modulo
            wrapped(gh, N, half, padded.data());
            const T* sv = s + h * S;
            std::fill(sh_h, sh_h + N, T(0));
            for (int64_t j = 0; j < S; ++j) {
                const T* from = padded.data() + 2 * half - j;  // from[i] = gated(i + half - j)
                for (int64_t i = 0; i < N; ++i) sh_h[i] += sv[j] * from[i];
            }
            for (int64_t n = 0; n < N; ++n) logs[n] = std::log(sh_h[n] + T(EPS));
            softmax(logs.data(), w + h * N, N, y[h]);
        }

        // read from the memory before the write; write M' = M prod_v (1 - w_v e_v) + sum_v w_v a_v
        T* rd = reads + p * R * M;
        T* out = new_memory + p * N * M;
        std::fill(rd, rd + R * M, T(0));
        read_slots<T, MC>(R, N, M, mem, w, rd);
        if (W == 1) {
            write_one<T, MC>(N, M, mem, w + R * N, e, a, out);
            continue;
        }
        for (int64_t n = 0; n < N; ++n) {
            const T* slot = mem + n * M;
            T* o = out + n * M;
            for (int64_t m = 0; m < M; ++m) o[m] = slot[m];
            for (int64_t v = 0; v < W; ++v) {
                T wn = w[(R + v) * N + n];
                const T* ev = e + v * M;
                for (int64_t m = 0; m < M; ++m) o[m] *= T(1) - wn * ev[m];
            }
            for (int64_t v = 0; v < W; ++v) {
                T wn = w[(R + v) * N + n];
                const T* av = a + v * M;
                for (int64_t m = 0; m < M; ++m) o[m] += wn * av[m];
            }
        }
    }
}

template <typename T, int MC>
void memory_backward(const Dims d, const T* memory, const T* previous, const T* key,
                   const T* beta, const T* gate, const T* shift, const T* gamma, const T* erase, const T* add,
                   const T* content, const T* gated, const T* shifted, const T* weights, const T* key_norms,
                   const T* slot_norms, const T* cosines_in, const T* g_weights, const T* g_reads,
                   const T* g_memory, T* g_raw, T* g_mem_out, T* g_previous) {
    const int64_t H = d.H, R = d.R, W = d.W(), N = d.N, M = MC ? MC : d.M, S = d.S, Z = d.Z(), half = S / 2;
    std::vector<T> g_w(H * N), g_erase(W * M), g_add(W * M), factor(W * M), others(M);
    std::vector<T> g_z(N), g_shifted(N), g_gated(N), g_content(N), g_u(N), g_dot(H * N), g_cc_slot(N), g_key(H * M);
    std::vector<T> g_beta(H), g_gate(H), g_shift(H * S), g_gamma(H), padded(N + S);
    for (int64_t p = d.first; p < d.last; ++p) {
        const T* mem = memory + p * N * M;
        const T* prev = previous + p * H * N;
        const T *k = key + p * H * M, *b = beta + p * H, *g = gate + p * H, *s = shift + p * H * S;
        const T *y = gamma + p * H, *e = erase + p * W * M, *a = add + p * W * M;
        const T *c = content + p * H * N, *gd = gated + p * H * N, *sh = shifted + p * H * N;
        const T* w = weights + p * H * N;
        const T* gm_in = g_memory ? g_memory + p * N * M : nullptr;
        const T* gr = g_reads ? g_reads + p * R * M : nullptr;
        T* gm = g_mem_out + p * N * M;

        if (g_weights) std::copy(g_weights + p * H * N, g_weights + (p + 1) * H * N, g_w.begin());
        else std::fill(g_w.begin(), g_w.end(), T(0));
        std::fill(g_erase.begin(), g_erase.end(), T(0));
        std::fill(g_add.begin(), g_add.end(), T(0));

        // pass 1: the write M' = M keep + sum_v w_v a_v, keep = prod_v (1 - w_v e_v), and the read, slot by slot
        if (gm_in && W == 1)
            write_one_backward<T, MC>(N, M, mem, gm_in, w + R * N, e, a, gm, g_w.data() + R * N, g_add.data(),
                                      g_erase.data());
        else for (int64_t n = 0; n < N; ++n) {
            const T* slot = mem + n * M;
            T* gslot = gm + n * M;
            if (gm_in) {
                const T* gin = gm_in + n * M;
                for (int64_t v = 0; v < W; ++v) {
                    T wn = w[(R + v) * N + n];
                    for (int64_t m = 0; m < M; ++m) factor[v * M + m] = T(1) - wn * e[v * M + m];
                }
                for (int64_t m = 0; m < M; ++m) gslot[m] = gin[m];
                for (int64_t v = 0; v < W; ++v)
                    for (int64_t m = 0; m < M; ++m) gslot[m] *= factor[v * M + m];
                for (int64_t v = 0; v < W; ++v) {
                    // d keep / d factor_v: the other heads' factors
                    for (int64_t m = 0; m < M; ++m) others[m] = gin[m] * slot[m];
                    for (int64_t u = 0; u < W; ++u)
                        if (u != v)
                            for (int64_t m = 0; m < M; ++m) others[m] *= factor[u * M + m];
                    T wn = w[(R + v) * N + n], acc = 0;
                    const T *ev = e + v * M, *av = a + v * M;
                    T *ge = g_erase.data() + v * M, *ga = g_add.data() + v * M;
                    for (int64_t m = 0; m < M; ++m) {
                        acc += av[m] * gin[m] - others[m] * ev[m];
                        ga[m] += wn * gin[m];
                        ge[m] -= others[m] * wn;
                    }
                    g_w[(R + v) * N + n] += acc;
                }
            } else {
                std::fill(gslot, gslot + M, T(0));
            }
        }
        if (gr) read_backward<T, MC>(R, N, M, mem, gr, w, gm, g_w.data());

        // addressing backward, head by head (the cosines and norms as forward left them)
        const T *key_norm = key_norms + p * H, *slot_norm = slot_norms + p * N, *cosine = cosines_in + p * H * N;
        std::fill(g_cc_slot.begin(), g_cc_slot.end(), T(0));
        for (int64_t h = 0; h < H; ++h) {
            const T *wh = w + h * N, *shh = sh + h * N, *gdh = gd + h * N, *ch = c + h * N, *ph = prev + h * N;
            const T* sv = s + h * S;
            // sharpen: w = softmax(gamma log(shifted + eps))
            softmax_backward(g_w.data() + h * N, wh, g_z.data(), N);
            T gy = 0;
            for (int64_t n = 0; n < N; ++n) {
                gy += g_z[n] * std::log(shh[n] + T(EPS));
                g_shifted[n] = g_z[n] * y[h] / (shh[n] + T(EPS));
            }
            g_gamma[h] = gy;
            // shift: shifted(i) = sum_j shift_j gated(i + half - j), so gated(k) reached shifted(k - half + j)
            wrapped(gdh, N, half, padded.data());
            for (int64_t j = 0; j < S; ++j) {
                const T* from = padded.data() + 2 * half - j;
                T acc = 0;
                for (int64_t i = 0; i < N; ++i) acc += g_shifted[i] * from[i];
                g_shift[h * S + j] = acc;
            }
            wrapped(g_shifted.data(), N, half, padded.data());
            std::fill(g_gated.begin(), g_gated.end(), T(0));
            for (int64_t j = 0; j < S; ++j) {
                const T* from = padded.data() + j;  // from[k] = g_shifted(k - half + j)
                for (int64_t k = 0; k < N; ++k) g_gated[k] += sv[j] * from[k];
            }
            // interpolation: gated = previous + g (content - previous)
            T gg = 0;
            T* gp = g_previous + p * H * N + h * N;
            for (int64_t n = 0; n < N; ++n) {
                gg += g_gated[n] * (ch[n] - ph[n]);
                g_content[n] = g_gated[n] * g[h];
                gp[n] = g_gated[n] - g_content[n];
            }
            g_gate[h] = gg;
            // content: softmax(beta cosine)
            softmax_backward(g_content.data(), ch, g_u.data(), N);
            T gb = 0, g_cc_key = 0;
            for (int64_t n = 0; n < N; ++n) {
                T cos = cosine[h * N + n];
                gb += g_u[n] * cos;
                T g_cos = g_u[n] * b[h];
                g_dot[h * N + n] = T(g_cos / (double(key_norm[h]) * slot_norm[n]));
                g_cc_key += g_cos * cos;
                g_cc_slot[n] += g_cos * cos;
            }
            g_beta[h] = gb;
            T* gk = g_key.data() + h * M;
            T along = T(g_cc_key / (double(key_norm[h]) * key_norm[h]));
            for (int64_t m = 0; m < M; ++m) gk[m] = -k[h * M + m] * along;
        }
        // pass 2: the cosines' gradients into the key and the memory
        for (int64_t n = 0; n < N; ++n) g_cc_slot[n] = T(g_cc_slot[n] / (double(slot_norm[n]) * slot_norm[n]));
        cosine_backward<T, MC>(H, N, M, mem, k, g_dot.data(), g_cc_slot.data(), gm, g_key.data());

        // through the activations into the raw vector
        T* gr_out = g_raw + p * Z;
        T* gb_out = gr_out + H * M;
        T* gg_out = gb_out + H;
        T* gs_out = gg_out + H;
        T* gy_out = gs_out + H * S;
        T* ge_out = gy_out + H;
        T* ga_out = ge_out + W * M;
        std::copy(g_key.begin(), g_key.end(), gr_out);
        for (int64_t h = 0; h < H; ++h) {
            gb_out[h] = g_beta[h] * -std::expm1(-b[h]);  // softplus' = 1 - exp(-softplus)
            gg_out[h] = g_gate[h] * (g[h] - g[h] * g[h]);
            softmax_backward(g_shift.data() + h * S, s + h * S, gs_out + h * S, S);
            gy_out[h] = g_gamma[h] * -std::expm1(T(1) - y[h]);
        }
        for (int64_t i = 0; i < W * M; ++i) {
            ge_out[i] = g_erase[i] * (e[i] - e[i] * e[i]);
            ga_out[i] = g_add[i] * (T(1) - a[i] * a[i]);
        }
    }
}

// LSTM cell, gates [P, 4C] in torch.nn.LSTMCell's order i, f, g, o: c' = f c + i g, h = o tanh(c')
template <typename T>
void lstm_forward(int64_t first, int64_t last, int64_t C, const T* gates, const T* cell, T* hidden, T* new_cell,
                  T* acts, T* tanh_cell) {
    for (int64_t p = first; p < last; ++p) {
        const T *z = gates + p * 4 * C, *c = cell + p * C;
        T *act = acts + p * 4 * C, *h = hidden + p * C, *cn = new_cell + p * C, *tc = tanh_cell + p * C;
        for (int64_t j = 0; j < 2 * C; ++j) act[j] = sigmoid(z[j]);
        for (int64_t j = 2 * C; j < 3 * C; ++j) act[j] = tanh_(z[j]);
        for (int64_t j = 3 * C; j < 4 * C; ++j) act[j] = sigmoid(z[j]);
        const T *i = act, *f = act + C, *g = act + 2 * C, *o = act + 3 * C;
        for (int64_t j = 0; j < C; ++j) {
            cn[j] = f[j] * c[j] + i[j] * g[j];
            tc[j] = tanh_(cn[j]);
            h[j] = o[j] * tc[j];
        }
    }
}

template <typename T>
void lstm_backward(int64_t first, int64_t last, int64_t C, const T* cell, const T* acts, const T* tanh_cell,
                   const T* g_hidden, const T* g_cell, T* g_gates, T* g_cell_out) {
    for (int64_t p = first; p < last; ++p) {
        const T *c = cell + p * C, *act = acts + p * 4 * C, *tc = tanh_cell + p * C;
        const T *i = act, *f = act + C, *g = act + 2 * C, *o = act + 3 * C;
        const T* gh = g_hidden ? g_hidden + p * C : nullptr;
        const T* gc = g_cell ? g_cell + p * C : nullptr;
        T *gz = g_gates + p * 4 * C, *gc_out = g_cell_out + p * C;
        for (int64_t j = 0; j < C; ++j) {
            T g_c = gc ? gc[j] : T(0), g_o = 0;
            if (gh) {
                g_c += gh[j] * o[j] * (T(1) - tc[j] * tc[j]);
                g_o = gh[j] * tc[j] * (o[j] - o[j] * o[j]);
            }
            gz[j] = g_c * g[j] * (i[j] - i[j] * i[j]);
            gz[C + j] = g_c * c[j] * (f[j] - f[j] * f[j]);
            gz[2 * C + j] = g_c * i[j] * (T(1) - g[j] * g[j]);
            gz[3 * C + j] = g_o;
            gc_out[j] = g_c * f[j];
        }
    }
}

// The rows split over `threads` threads, each computing rows [first, last) with scratch of its own.
// The threads are torch's: the library links libgomp, which resolves to the one torch has loaded
// (the same soname), so the memory step and torch's matrix products share one pool of threads
// instead of two pools spinning against each other on the same cores (as std::thread did).
constexpr int64_t MIN_ROWS = 8;  // below this, starting the threads costs more than the rows

template <typename F> void over_rows(int64_t P, int64_t threads, F run) {
#pragma omp parallel num_threads(int(threads)) if (threads > 1 && P >= MIN_ROWS)
    {
        const int64_t n = omp_get_num_threads(), i = omp_get_thread_num();
        run(P * i / n, P * (i + 1) / n);
    }
}

}  // namespace

// The C interface ctypes calls: one forward and one backward per dtype. Null gradient
// pointers stand for zeros (a gradient that did not flow).
#define NTM_EXPORT(T, SUFFIX)                                                                                  \
    extern "C" void ntm_memory_forward_##SUFFIX(                                                                \
        int64_t threads, int64_t P, int64_t H, int64_t R, int64_t N, int64_t M, int64_t S, const T* raw,        \
        const T* memory, const T* previous, T* weights, T* reads, T* new_memory, T* key, T* beta, T* gate,      \
        T* shift, T* gamma, T* erase, T* add, T* content, T* gated, T* shifted, T* key_norms, T* slot_norms,    \
        T* cosines) {                                                                                           \
        over_rows(P, threads, [&](int64_t first, int64_t last) {                                                \
            (M == FIXED_WIDTH ? memory_forward<T, FIXED_WIDTH> : memory_forward<T, 0>)(                         \
                Dims{H, R, N, M, S, first, last}, raw, memory, previous, weights, reads, new_memory, key,       \
                beta, gate, shift, gamma, erase, add, content, gated, shifted, key_norms, slot_norms, cosines); \
        });                                                                                                     \
    }                                                                                                           \
    extern "C" void ntm_memory_backward_##SUFFIX(                                                               \
        int64_t threads, int64_t P, int64_t H, int64_t R, int64_t N, int64_t M, int64_t S, const T* memory,     \
        const T* previous, const T* key, const T* beta, const T* gate, const T* shift, const T* gamma,          \
        const T* erase, const T* add, const T* content, const T* gated, const T* shifted, const T* weights,     \
        const T* key_norms, const T* slot_norms, const T* cosines, const T* g_weights, const T* g_reads,        \
        const T* g_memory, T* g_raw, T* g_mem, T* g_previous) {                                                 \
        over_rows(P, threads, [&](int64_t first, int64_t last) {                                                \
            (M == FIXED_WIDTH ? memory_backward<T, FIXED_WIDTH> : memory_backward<T, 0>)(                       \
                Dims{H, R, N, M, S, first, last}, memory, previous, key, beta, gate, shift, gamma, erase,       \
                add, content, gated, shifted, weights, key_norms, slot_norms, cosines, g_weights, g_reads,      \
                g_memory, g_raw, g_mem, g_previous);                                                            \
        });                                                                                                     \
    }                                                                                                           \
    extern "C" void ntm_lstm_forward_##SUFFIX(int64_t threads, int64_t P, int64_t C, const T* gates,             \
                                             const T* cell, T* hidden, T* new_cell, T* acts, T* tanh_cell) {    \
        over_rows(P, threads, [&](int64_t first, int64_t last) {                                                \
            lstm_forward<T>(first, last, C, gates, cell, hidden, new_cell, acts, tanh_cell);                    \
        });                                                                                                     \
    }                                                                                                           \
    extern "C" void ntm_lstm_backward_##SUFFIX(int64_t threads, int64_t P, int64_t C, const T* cell,            \
                                              const T* acts, const T* tanh_cell, const T* g_hidden,             \
                                              const T* g_cell, T* g_gates, T* g_cell_out) {                     \
        over_rows(P, threads, [&](int64_t first, int64_t last) {                                                \
            lstm_backward<T>(first, last, C, cell, acts, tanh_cell, g_hidden, g_cell, g_gates, g_cell_out);     \
        });                                                                                                     \
    }

NTM_EXPORT(float, f32)
NTM_EXPORT(double, f64)
