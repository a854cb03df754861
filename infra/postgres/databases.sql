-- One PostgreSQL server, one database per service (runs once, on an empty data volume).
CREATE DATABASE mlflow;
CREATE DATABASE mlflow_auth;
CREATE DATABASE prefect;
