"""What the spec cannot say in JSON Schema, told to schemathesis.

A password in this API is 8 to 72 bytes of UTF-8 (bcrypt reads no more than 72) with no
NUL character. JSON Schema counts characters, so the spec's bounds (2 to 72 characters)
are the widest those byte limits allow, and a schema-valid 3-character password can still
be too short. The strategy below generates exactly the passwords the service accepts, for
every property of `format: password`, so that "schema-valid request rejected" keeps its
meaning for every other field. Negative cases (too few or too many characters, wrong
types) are still generated from the schema.
"""

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.format(
    "password",
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
        min_size=2,
        max_size=72,
    ).filter(lambda text: 8 <= len(text.encode("utf-8")) <= 72),
)

NO_NUL = r"^[^\x00]*$"


@schemathesis.hook
def before_load_schema(context, raw_schema):
    """Lets the password strategy generate passwords.

    schemathesis builds a string from its `pattern` when it has one, and a format strategy
    only for a string with nothing but `format` and lengths; the strategy above already
    leaves NUL out, so the no-NUL pattern of a password is dropped for generation.
    """
    for schema in raw_schema.get("components", {}).get("schemas", {}).values():
        for prop in schema.get("properties", {}).values():
            if prop.get("format") == "password" and prop.get("pattern") == NO_NUL:
                del prop["pattern"]
