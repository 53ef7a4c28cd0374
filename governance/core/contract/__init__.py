"""The input data contract of a model version, checked on every application it decides.

The training data went through the dataset's Great Expectations suite; a decision's inputs must
go through the same rules. :func:`derive_contract` turns three things into one
:class:`Contract`:

* the **dataset spec** (``governance/datasets/<name>.yaml``): which columns are model inputs,
  their kind (numeric or categorical), their categories and whether a caller may leave them
  missing;
* the dataset's **GX suite** (``expectations/<name>.json``): what it says is *impossible* for a
  row becomes a hard rule: ``expect_column_values_to_be_between`` gives hard bounds,
  ``..._to_be_in_set`` the allowed values (categories, or codes of a numeric column such as
  ``chist`` 1-6), ``..._to_not_be_in_set`` forbidden values, ``..._to_not_be_null`` forbids
  missing values, ``..._to_be_in_type_list`` / ``..._to_be_of_type`` with integer dtypes only
  requires whole numbers, and ``expect_column_pair_values_a_to_be_greater_than_b`` a relation
  between two inputs (``Price >= Amount``). An expectation with ``mostly`` below 1 tolerates
  exceptions, so it is *not* a hard rule; such expectations, and row-level expectations the
  contract cannot check on one application, are listed in :attr:`Contract.unenforced`;
* the **validated training data**: the range of each numeric input and the values of each
  categorical input seen in training, and whether missing values were seen.

An application is then judged by :meth:`Contract.check` (one mapping) or
:meth:`Contract.check_frame` (a frame, row by row, vectorised):

* a **violation** (:class:`Violation`) breaks a hard rule: unknown or missing input, wrong type,
  not finite, outside the hard bounds, not an allowed value, a broken relation. It must be
  refused (HTTP 422) and nothing recorded. Its message names the row (for frames), the feature,
  the value and the bound, e.g. ``"row 3: feature 'pirat' = -5 is below the hard minimum 0"``;
* an **out-of-distribution flag** (:class:`Flag`) marks a value inside the hard rules but outside
  what training saw (a numeric value outside the training range widened by the policy's
  margin, a category or code never seen in training, a missing value where training had none).
  Under the default policy the application is decided and the flags are recorded with it; under
  ``out_of_distribution: refuse`` each flag is also a (non-hard) violation.

Policies come from ``params.yaml`` → ``contract`` (:meth:`ContractPolicy.from_params`) and are
part of the contract, so a version is judged by the policy it was registered with.

A contract serialises canonically (:meth:`Contract.canonical_json`: sorted keys, no
whitespace, UTF-8) and is named by the sha256 of those bytes (:attr:`Contract.contract_id`);
:meth:`Contract.from_dict` reads it back exactly.

Reading feasible values (e.g. for recourse: which changes would be allowed at all): every
:class:`FeatureContract` says :attr:`~FeatureContract.type`, :attr:`~FeatureContract.nullable`,
:attr:`~FeatureContract.bounds` (an :class:`Interval`), :attr:`~FeatureContract.allowed` and
:attr:`~FeatureContract.forbidden`, and answers :meth:`~FeatureContract.feasible` for one value
and :meth:`~FeatureContract.feasible_values` for the finite set of permitted values (categories or
codes) where there is one; :attr:`Contract.relations` holds the cross-feature rules. The training
side is :attr:`~FeatureContract.training_range`, :attr:`~FeatureContract.training_values` and
:attr:`~FeatureContract.training_missing`.

This module is pure: no I/O, no Dagster, MLflow or GX import (the suite is passed in as the dict
:func:`governance.core.validation.load_suite` returns).
"""

from __future__ import annotations

from governance.core.contract._contract import Contract
from governance.core.contract._derive import derive_contract
from governance.core.contract._feature import FeatureContract
from governance.core.contract._types import (
    FORMAT,
    ContractPolicy,
    ContractViolation,
    Flag,
    FrameVerdict,
    Interval,
    Relation,
    Verdict,
    Violation,
)

__all__ = [
    "FORMAT",
    "Contract",
    "ContractPolicy",
    "ContractViolation",
    "FeatureContract",
    "Flag",
    "FrameVerdict",
    "Interval",
    "Relation",
    "Verdict",
    "Violation",
    "derive_contract",
]
