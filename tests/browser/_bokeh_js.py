"""JavaScript the browser tests run in a page to read a Bokeh model's data by its id."""

# ([model id, column]) -> how many values the ColumnDataSource holds in that column (-1: no such model)
DATA_LENGTH = """([id, column]) => {
    for (const doc of Bokeh.documents) {
        const model = doc.get_model_by_id(id);
        if (model) {
            const data = model.data;
            const values = data instanceof Map ? data.get(column) : data[column];
            return values.length;
        }
    }
    return -1;
}"""
