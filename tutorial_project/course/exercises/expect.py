"""Expectations that several lessons' checks share."""

from asgiref.sync import iscoroutinefunction


def must_be_async(check, function, name, params="...", *, kind="function", hint=None):
    """Stop the check with a hint unless ``function`` is an async function (or marked as one).

    ``kind`` names what it is in the passing line ("function", "view"); ``hint`` replaces the
    default "define it with `async def name(params):`".
    """
    check.that(
        iscoroutinefunction(function),
        f"{name} is an async {kind}",
        f"{name} is not an async function",
        hint=hint or f"define it with `async def {name}({params}):`",
    )
