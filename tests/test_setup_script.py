""".ci/setup stops on a failed install instead of carrying on as if it had worked."""

import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A stand-in for .venv/bin/python: `-m pip ...` fails as pip does, everything else succeeds
# (so only the install's failure can stop the script).
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
    echo "ERROR: Could not find a version that satisfies the requirement ntmviz" >&2
    exit 1
fi
exit 0
"""


def run_setup(tmp_path, python_script):
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "setup", tmp_path / ".ci" / "setup")
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(python_script)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return subprocess.run(["bash", str(tmp_path / ".ci" / "setup")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": os.environ.get("PATH", "/usr/bin:/bin")})


def test_a_failed_pip_install_stops_the_setup(tmp_path):
    done = run_setup(tmp_path, FAKE_PYTHON)
    assert done.returncode != 0
    assert "Could not find a version" in done.stdout + done.stderr  # pip's own words reach the user


def test_a_quiet_successful_install_passes(tmp_path):
    # pip prints nothing when it works (-q): the output filter finding no line is not a failure
    done = run_setup(tmp_path, "#!/usr/bin/env bash\nexit 0\n")
    assert done.returncode == 0, done.stderr
