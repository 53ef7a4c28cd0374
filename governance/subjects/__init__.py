"""What the people a model decided about are owed, read from the ledger alone.

* :mod:`~governance.subjects.recourse`: the exact recourse recorded with an adverse decision;
* :mod:`~governance.subjects.notices`: adverse-action notices issued from the record (a
  ``notice`` event holds each document's SHA-256) and their verification;
* :mod:`~governance.subjects.holds`: legal holds and the retention report;
* :mod:`~governance.subjects.report`: the subject access report (GDPR art. 15).

These adapters read and append ledger records; the pure parts live in ``governance.core``
(``recourse``, ``notice``, ``retention``). None needs the model registry, so a notice or a
report can be produced with MLflow gone.
"""
