"""The model's input schema, and turning already-decoded values into the rows the model takes.

Pure functions over Python/numpy values: the protocol codecs call these after parsing their wire
format, so every protocol validates features the same way and reports the same messages.

A model fitted on a plain numeric array takes a float64 2-D array (the fast path: no pandas per
request). A model fitted on a DataFrame (it has ``feature_names_in_``, e.g. a ColumnTransformer that
selects columns by name, or any model with string features) takes a DataFrame with its columns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from .errors import InvalidInput, TooManyRows, quote, quote_names
from .types import Feature, InputKind, Metadata

if TYPE_CHECKING:
    import pandas as pd

# What the model is called with: a float64 2-D array (fast path) or a DataFrame. pandas is imported
# only for a model that takes a DataFrame: it is ~30 MiB and 0.2 s of start a model on arrays never
# uses (docs/performance.md, memory per imported package).
Rows: TypeAlias = "np.ndarray | pd.DataFrame"

_NUMBER_TYPES = frozenset({int, float})
_JSON_TYPE_NAMES = {
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    type(None): "null",
    dict: "object",
    list: "array",
}


def _pandas() -> Any:
    import pandas

    return pandas


def json_type(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class InputSchema:
    features: tuple[Feature, ...]
    input_kind: InputKind
    allow_nan: bool
    max_rows: int
    names: tuple[str, ...] = field(init=False)
    name_set: frozenset[str] = field(init=False)
    numeric_only: bool = field(init=False)
    # Built once: a DataFrame over one 2-D block with a ready Index costs ~6 us, one from a dict of
    # columns ~70 us (pandas builds the column Index and a block per dtype every time).
    _columns: pd.Index | None = field(init=False, repr=False, compare=False)
    _int_columns: tuple[str, ...] = field(init=False, repr=False, compare=False)

    @classmethod
    def for_model(cls, meta: Metadata, max_rows: int) -> InputSchema:
        return cls(meta.features, meta.input_kind, meta.allow_nan, max_rows)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(f.name for f in self.features))
        object.__setattr__(self, "name_set", frozenset(self.names))
        object.__setattr__(self, "numeric_only", all(f.dtype != "string" for f in self.features))
        takes_frame = self.input_kind == "dataframe" or not self.numeric_only
        object.__setattr__(self, "_columns", _pandas().Index(self.names) if takes_frame else None)
        object.__setattr__(self, "_int_columns", tuple(f.name for f in self.features if f.dtype == "int"))

    @property
    def width(self) -> int:
        return len(self.features)

    def check_row_count(self, n: int) -> None:
        if n == 0:
            raise InvalidInput("the request has no rows: send at least one")
        if n > self.max_rows:
            raise TooManyRows(
                f"the request has {n} rows, over the limit of {self.max_rows} rows per request "
                "(MAX_REQUEST_ROWS): split it into smaller batches"
            )

    # ---- entry points used by the codecs -------------------------------------------------------

    def from_records(self, records: Sequence[Any]) -> Rows:
        """Rows from a list of ``{feature: value}`` objects."""
        self.check_row_count(len(records))
        names, name_set = self.names, self.name_set
        for i, rec in enumerate(records):
            if type(rec) is not dict:
                raise InvalidInput(f"row {i} must be an object of feature values, got {json_type(rec)}")
            if rec.keys() != name_set:
                self._explain_keys(i, rec)
        if self.numeric_only:
            return self._checked_ints(self._numeric_matrix([[rec[n] for n in names] for rec in records]))
        return self.from_columns({n: [rec[n] for rec in records] for n in names})

    def from_lists(self, rows: Sequence[Any]) -> Rows:
        """Rows from a list of lists, values in feature order (KServe V1 ``instances``)."""
        self.check_row_count(len(rows))
        width = self.width
        for i, row in enumerate(rows):
            if type(row) is not list:
                raise InvalidInput(
                    f"instance {i} must be a list of {width} values in feature order "
                    f"({', '.join(self.names)}), got {json_type(row)}"
                )
            if len(row) != width:
                raise InvalidInput(
                    f"instance {i} has {len(row)} values, expected {width} ({', '.join(self.names)})"
                )
        if self.numeric_only:
            return self._checked_ints(self._numeric_matrix(rows))
        return self.from_columns({n: [row[j] for row in rows] for j, n in enumerate(self.names)})

    def from_matrix(self, matrix: np.ndarray) -> Rows:
        """Rows from a numeric 2-D array whose columns are the features in order (V2 2-D tensor)."""
        if matrix.ndim != 2 or matrix.shape[1] != self.width:
            raise InvalidInput(
                f"a 2-D input tensor must have shape [rows, {self.width}] (features "
                f"{', '.join(self.names)}), got {list(matrix.shape)}"
            )
        if not self.numeric_only:
            strings = [f.name for f in self.features if f.dtype == "string"]
            raise InvalidInput(
                f"this model has string features ({', '.join(strings)}): send one input tensor per "
                "feature (BYTES for strings) instead of one 2-D tensor"
            )
        self.check_row_count(matrix.shape[0])
        if matrix.dtype.kind not in "fiub":
            raise InvalidInput(f"a 2-D input tensor must be numeric, got {matrix.dtype}")
        arr = np.ascontiguousarray(matrix, dtype=np.float64)
        self._check_finite_matrix(arr)
        return self._checked_ints(arr)

    def from_columns(self, columns: Mapping[str, Sequence[Any] | np.ndarray]) -> Rows:
        """Rows from one sequence (list or 1-D array) of values per feature."""
        missing = [n for n in self.names if n not in columns]
        extra = sorted(n for n in columns if n not in self.name_set)
        if missing or extra:
            raise InvalidInput(self._key_message(missing, extra))
        lengths = {n: len(columns[n]) for n in self.names}
        n_rows = lengths[self.names[0]]
        if any(v != n_rows for v in lengths.values()):
            detail = ", ".join(f"{k}: {v}" for k, v in lengths.items())
            raise InvalidInput(f"every feature needs the same number of rows, got {detail}")
        self.check_row_count(n_rows)
        cols = {f.name: self._column(f, columns[f.name]) for f in self.features}
        if self.numeric_only:
            return np.column_stack([cols[n] for n in self.names]).astype(np.float64, copy=False)
        return _pandas().DataFrame(cols, copy=False)

    def model_input(self, rows: Rows) -> Rows:
        """What the estimator is called with, once per model call (in the worker thread).

        Numeric rows travel from the codecs as one float64 array: cheap to validate, to concatenate
        into a micro-batch and to slice. Only here do they become the DataFrame a DataFrame-fitted
        model expects, with integer features cast back to int64 (validated whole by the codecs)."""
        if self.input_kind == "array" or not isinstance(rows, np.ndarray):
            return rows
        frame = _pandas().DataFrame(rows, columns=self._columns, copy=False)
        for name in self._int_columns:
            col = frame[name].to_numpy()
            if not np.isnan(col).any():
                frame[name] = col.astype(np.int64)
        return frame

    def _checked_ints(self, arr: np.ndarray) -> np.ndarray:
        """Integer features of a DataFrame-fitted model must hold whole numbers (400 otherwise)."""
        if self.input_kind == "array":
            return arr
        for j, f in enumerate(self.features):
            if f.dtype == "int":
                self._typed_numeric(f, arr[:, j])
        return arr

    # ---- validation ----------------------------------------------------------------------------

    def _key_message(self, missing: Sequence[str], extra: Sequence[str]) -> str:
        parts = []
        if missing:
            parts.append("missing feature(s): " + ", ".join(missing))
        if extra:
            parts.append("unknown feature(s): " + quote_names(extra))
        return "; ".join(parts) + f" (this model takes: {', '.join(self.names)})"

    def _explain_keys(self, i: int, rec: Mapping[str, Any]) -> None:
        missing = [n for n in self.names if n not in rec]
        extra = sorted(k for k in rec if k not in self.name_set)
        raise InvalidInput(f"row {i}: " + self._key_message(missing, extra))

    def _numeric_matrix(self, values: Sequence[Sequence[Any]]) -> np.ndarray:
        types = {type(v) for row in values for v in row}
        if not types <= _NUMBER_TYPES and not (self.allow_nan and types <= _NUMBER_TYPES | {type(None)}):
            self._explain_numeric(values)
        try:
            arr = np.array(values, dtype=np.float64)
        except (OverflowError, ValueError) as e:
            raise InvalidInput(f"a feature value cannot be read as a number: {e}") from None
        self._check_finite_matrix(arr)
        return arr

    def _explain_numeric(self, values: Sequence[Sequence[Any]]) -> None:
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                if type(v) not in _NUMBER_TYPES:
                    self._reject_value(self.features[j], i, v)
        raise AssertionError("unreachable: a non-number value was seen")  # pragma: no cover

    def _reject_value(self, f: Feature, i: int, v: object) -> None:
        if v is None:
            if self.allow_nan and f.dtype != "string":
                return
            raise InvalidInput(
                f"feature '{f.name}' at row {i} is null: this model cannot take missing values"
            )
        expected = {"float": "a number", "int": "an integer", "string": "a string"}[f.dtype]
        raise InvalidInput(f"feature '{f.name}' at row {i} must be {expected}, got {json_type(v)} {quote(v)}")

    def _check_finite_matrix(self, arr: np.ndarray) -> None:
        if arr.size and not np.isfinite(arr).all():
            bad = ~np.isfinite(arr)
            if self.allow_nan:
                bad &= ~np.isnan(arr)
            if bad.any():
                i, j = (int(x) for x in np.argwhere(bad)[0])
                self._reject_non_finite(self.features[j].name, i, float(arr[i, j]))

    def _reject_non_finite(self, name: str, i: int, v: float) -> None:
        if math.isnan(v):
            raise InvalidInput(f"feature '{name}' at row {i} is NaN: this model cannot take missing values")
        raise InvalidInput(f"feature '{name}' at row {i} is {v}: infinite values are not accepted")

    def _column(self, f: Feature, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        if isinstance(values, np.ndarray):
            return self._array_column(f, values)
        if f.dtype == "string":
            types = {type(v) for v in values}
            if types != {str}:
                for i, v in enumerate(values):
                    if type(v) is not str:
                        self._reject_value(f, i, v)
            return np.array(values, dtype=object)
        types = {type(v) for v in values}
        if not types <= _NUMBER_TYPES:
            for i, v in enumerate(values):
                if type(v) not in _NUMBER_TYPES:
                    self._reject_value(f, i, v)
        try:
            col = np.array(values, dtype=np.float64)
        except (OverflowError, ValueError) as e:
            raise InvalidInput(f"feature '{f.name}' cannot be read as numbers: {e}") from None
        return self._typed_numeric(f, self._finite(f, col))

    def _array_column(self, f: Feature, arr: np.ndarray) -> np.ndarray:
        if arr.ndim != 1:
            raise InvalidInput(f"feature '{f.name}' must be one value per row, got shape {list(arr.shape)}")
        if f.dtype == "string":
            if arr.dtype.kind not in "OU":
                raise InvalidInput(
                    f"feature '{f.name}' is a string feature: send it as BYTES, got {arr.dtype}"
                )
            return arr.astype(object, copy=False)
        if arr.dtype.kind not in "fiub":
            raise InvalidInput(f"feature '{f.name}' is numeric: send a number datatype, got strings")
        return self._typed_numeric(f, self._finite(f, arr.astype(np.float64, copy=False)))

    def _finite(self, f: Feature, col: np.ndarray) -> np.ndarray:
        if col.size and not np.isfinite(col).all():
            bad = ~np.isfinite(col)
            if self.allow_nan:
                bad &= ~np.isnan(col)
            if bad.any():
                i = int(np.argmax(bad))
                self._reject_non_finite(f.name, i, float(col[i]))
        return col

    def _typed_numeric(self, f: Feature, col: np.ndarray) -> np.ndarray:
        if f.dtype != "int" or self.input_kind == "array":
            return col
        if np.isnan(col).any():
            return col  # missing values in an int feature: float column, as pandas would make it
        whole = np.equal(np.mod(col, 1), 0)
        if not whole.all():
            i = int(np.argmin(whole))
            raise InvalidInput(f"feature '{f.name}' at row {i} must be an integer, got {col[i]}")
        return col.astype(np.int64)
