"""pinpipe's batch job as an Airflow DAG, for teams that already operate Airflow (MWAA or their own).

Same schedule and policy as `pinpipe schedule`: daily at midnight UTC, 3 retries 2 minutes apart,
no catch-up of missed runs, never two runs at once. The task runs `pinpipe batch` for the run's
logical date; its results land in `<data_dir>/results/<date>_airflow-<run id>`.

Configure with environment variables of the Airflow workers (no credentials here: pinpipe reads
them from the environment / the AWS default chain):
  PINPIPE_BIN       the pinpipe binary (default: `pinpipe` on PATH)
  PINPIPE_CONFIG    a pinpipe.toml (store, warehouse, prefix, ...), optional
  PINPIPE_DATA_DIR  pinpipe's data directory, optional
Copy this file into the DAGs folder (for MWAA: the `dags/` prefix of its S3 bucket).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from airflow import DAG

try:  # Airflow 3: operators live in the standard provider.
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

PINPIPE_BIN = os.environ.get("PINPIPE_BIN", "pinpipe")

DEFAULT_ARGS = {
    "owner": "pinpipe",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
}

with DAG(
    dag_id="pinpipe_batch",
    description="pinpipe batch job: clean the raw objects into Delta tables and answer the eight questions",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["pinpipe"],
) as dag:
    BashOperator(
        task_id="batch",
        # The run id names the run folder; ':' and '+' are not allowed there.
        bash_command=(
            f'"{PINPIPE_BIN}" batch --quiet --date {{{{ ds }}}} '
            "--run-id \"airflow-{{ run_id | replace(':', '') | replace('+', '') | replace('__', '-') }}\""
        ),
    )
