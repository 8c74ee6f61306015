"""Expectations that several lessons' checks share."""

from asgiref.sync import iscoroutinefunction


def must_be_async(check, function, name, params="..."):
    """Stop the check with a hint unless ``function`` is an async function (or marked as one)."""
    check.that(
        iscoroutinefunction(function),
        f"{name} is an async function",
        f"{name} is not an async function",
        hint=f"define it with `async def {name}({params}):`",
    )
