"""Journey analytics: the v1 event schema, the lake (Firehose / local Parquet), the KPI SQL and its runner,
the HTML report and demo traffic. Only ``schema`` and ``lake`` run in Lambda's stream path (botocore only);
DuckDB and pyarrow are imported by the CLI and the local writer alone."""
