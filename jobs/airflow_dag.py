"""Airflow DAG: the retail segmentation job once a day, for the DAG run's logical date.

segvalue runs are idempotent: a rerun of a date replaces that date's partitions atomically and
leaves the other dates alone, so Airflow's retries, clears and backfills are safe, e.g.

    airflow dags backfill --start-date 2025-01-01 --end-date 2025-01-31 segvalue_retail

Exit codes: 0 success; 1 the run failed (a source, a data check, a fit, publishing: retrying
can help); 2 the job file, SQL or arguments are wrong (fix them; a retry fails the same way).
With --log-format json every stderr line is one JSON object for the log shipper.
"""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

SEGVALUE = "/opt/segvalue/bin/segvalue"
JOB = "/opt/segvalue/jobs/retail.toml"

with DAG(
    dag_id="segvalue_retail",
    schedule="0 3 * * *",  # 03:00 every day, for the previous day ({{ ds }})
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=10),
        "retry_exponential_backoff": True,
    },
    tags=["segvalue"],
) as dag:
    # Fails in seconds on what a run needs from outside the job file (the sources listing
    # files, the output root taking a write, a score run's saved model) before the run task
    # takes a slot; it reads no source rows.
    check = BashOperator(
        task_id="segvalue_check",
        bash_command=f"{SEGVALUE} --log-format json check {JOB} --run-date {{{{ ds }}}}",
        env={"SEGVALUE_PSEUDONYM_KEY": "{{ var.value.segvalue_pseudonym_key }}"},
        append_env=True,
    )
    run = BashOperator(
        task_id="segvalue_run",
        bash_command=f"{SEGVALUE} --log-format json run {JOB} --run-date {{{{ ds }}}}",
        # Only needed with [privacy] pseudonymisation; keep the key in an Airflow connection
        # or secret backend, never in the DAG file.
        env={"SEGVALUE_PSEUDONYM_KEY": "{{ var.value.segvalue_pseudonym_key }}"},
        append_env=True,
    )
    report = BashOperator(
        task_id="segvalue_runs",
        bash_command=f"{SEGVALUE} runs /data/segvalue/out",
    )
    check >> run >> report
