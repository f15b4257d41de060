"""The stablepipe pipeline DAG and its command line."""
