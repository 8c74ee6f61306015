"""Check a JSON request body before anything touches the database.

``parse_new_product(body)`` returns the cleaned fields, or raises ``BadPayload`` whose
``errors`` say what is wrong, field by field. Pure Python, no queries: it runs on the
event loop. Whether the category and tags exist is the view's job (that needs the ORM).
"""

import json
from decimal import Decimal, InvalidOperation

from tutorial_project.catalog.models import Product

REQUIRED = {"sku": str, "name": str, "category": str, "price": (str, int, float), "stock": int}
OPTIONAL = {"description": str, "tags": list}
MAX_PRICE = Decimal("999999.99")  # Product.price has max_digits=8, decimal_places=2


class BadPayload(Exception):
    def __init__(self, errors):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def parse_json_object(body):
    """The body as a dict, or BadPayload (not JSON, not UTF-8, or not an object)."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadPayload({"body": f"not valid JSON ({error})"}) from None
    if not isinstance(data, dict):
        raise BadPayload({"body": f"expected a JSON object, got {type(data).__name__}"})
    return data


def parse_new_product(body):
    data = parse_json_object(body)
    errors = {}
    for field, kind in {**REQUIRED, **OPTIONAL}.items():
        if field not in data:
            if field in REQUIRED:
                errors[field] = "this field is required"
            continue
        value = data[field]
        # bool is a subclass of int in Python, but `"stock": true` is a client bug.
        if isinstance(value, bool) or not isinstance(value, kind):
            errors[field] = f"wrong type: {type(value).__name__}"
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        errors["unknown fields"] = ", ".join(unknown)
    if errors:
        raise BadPayload(errors)
    return _checked_values(data)


def _checked_values(data):
    errors = {}
    for field in ("sku", "name"):
        limit = Product._meta.get_field(field).max_length
        if not data[field].strip() or len(data[field]) > limit:
            errors[field] = f"must be 1 to {limit} characters"
    price = _decimal(data["price"])
    if price is None or not (0 <= price <= MAX_PRICE) or price.as_tuple().exponent < -2:
        errors["price"] = "must be a number from 0 to 999999.99 with at most 2 decimals"
    if data["stock"] < 0:
        errors["stock"] = "must be 0 or more"
    tags = data.get("tags", [])
    if not all(isinstance(tag, str) for tag in tags):
        errors["tags"] = "must be a list of tag names"
    if errors:
        raise BadPayload(errors)
    return {
        "sku": data["sku"].strip(),
        "name": data["name"].strip(),
        "category": data["category"],
        "price": price,
        "stock": data["stock"],
        "description": data.get("description", ""),
        "tags": sorted(set(tags)),
    }


def _decimal(value):
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
