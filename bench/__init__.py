"""Benchmarks of `governance`, side by side with their baselines, in one run (``make bench``).

``python -m bench [--quick] [--only NAME ...] [--json PATH] [--profile DIR]`` builds a
throwaway clone of the project with a registered model, runs the benchmarks below, prints one
Markdown table and writes ``bench/results/latest.json``. Every figure is the median of repeated
runs, and every ratio is taken against a baseline measured in the same run on the same machine
(nothing is hard-coded):

=========  ===========================================================================
decisions  durable audited decisions/s (Python API, 1 and N threads, SQLite and PostgreSQL)
           vs one MLflow run per decision and vs the raw single-row durable INSERT
batch      ``score_frame`` over 1,000,000 synthetic applications vs raw batched INSERT
http       ``governance serve`` vs ``mlflow models serve`` on the same model: requests/s,
           p50, p99 at 1 and 8 connections, every decision in our ledger
audit      ``verify``, ``trace`` and ``find --subject`` at 1,000,000 records
witness    checkpoint cosigned by 2 witness processes vs alone (p50, p99), decisions/s with
           the periodic checkpointer on vs off, ``verify --bundle`` of 1,000,000 decisions
           vs raw read + sha256
pipeline   cold pipeline (in-process and ``dvc repro``), no-op ``dvc repro``
=========  ===========================================================================

Benchmarks are not tests: ``tests/test_bench.py`` only smoke-runs each at tiny sizes.
"""
