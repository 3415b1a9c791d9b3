"""The project's SQL conventions as SQLMesh linter rules (`sqlmesh lint`, run by `make lint`): a model says
what it is in its top comment, describes every column, and writes SQL keywords in lowercase."""

from __future__ import annotations

import re
from pathlib import Path

from sqlglot.tokens import Tokenizer
from sqlmesh.core.linter.rule import Rule, RuleViolation
from sqlmesh.core.model import Model, SqlModel

KEYWORDS = {word for k in Tokenizer.KEYWORDS for word in k.split() if word.isalpha()}  # SELECT, FROM, SEMI, ...
_QUOTED_OR_COMMENT = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|--[^\n]*|/\*.*?\*/", re.S)


def _source(model: Model) -> str:
    return Path(model._path).read_text() if model._path and str(model._path).endswith(".sql") else ""


class ModelHasTopComment(Rule):
    """A SQL model file starts with a one-line `--` comment saying what the model is."""

    def check_model(self, model: Model) -> RuleViolation | None:
        text = _source(model)
        if text and not text.lstrip().startswith("-- "):
            return self.violation(f"{model.name}: start the file with a one-line `-- ` description of the model")
        return None


class ColumnsHaveDescriptions(Rule):
    """Every declared column of a model has a description (`column_descriptions`)."""

    def check_model(self, model: Model) -> RuleViolation | None:
        missing = sorted(set(model.columns_to_types or {}) - set(model.column_descriptions))
        if missing:
            return self.violation(f"{model.name}: describe column(s) {', '.join(missing)} in column_descriptions")
        return None


class LowercaseKeywords(Rule):
    """SQL keywords are written in lowercase in a model's query."""

    def check_model(self, model: Model) -> RuleViolation | None:
        if not isinstance(model, SqlModel):
            return None
        text = _QUOTED_OR_COMMENT.sub(" ", _source(model))
        body = text[text.find(");", text.find("MODEL (")) + 2 :] if "MODEL (" in text else text
        shouting = sorted(set(re.findall(r"\b[A-Z]{2,}\b", body)) & KEYWORDS)
        if shouting:
            return self.violation(f"{model.name}: write keywords in lowercase ({', '.join(shouting[:5])})")
        return None
