-- Run once by the postgres image on an empty data directory: MLflow's database beside modelward's.
CREATE DATABASE mlflow;
