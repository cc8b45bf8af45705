"""Checks the events of every GET /events response schemathesis read (from its HAR files)
against the spec: what schemathesis' response_schema_conformance cannot do for an event
stream described by an OpenAPI 3.0 spec (run.sh says why).

    python3 events.py SPEC_URL RUN.har [RUN.har ...]

Each event of a 200 must have a name the spec's discriminator maps, an integer `id` greater than
the one before it in the same response, and JSON `data` whose `type` is that name, valid against
the schema the name maps to and against the items of the declared stream (EventData).
Needs jsonschema_rs (schemathesis' own validator, in its virtualenv). Fails when no response
carried an event, since then nothing was checked.
"""

import json
import re
import sys
import urllib.request

import jsonschema_rs


def events(text: str):
    """The events of an event stream, parsed as EventSource does: (name, id, data)."""
    name, data, last_id = "", [], ""
    for line in re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff")):
        if line == "":
            if data:
                yield name or "message", last_id, "\n".join(data)
            name, data = "", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif field == "id" and "\0" not in value:
                last_id = value
    # An event the stream was cut in the middle of (schemathesis stops reading) is not one.


def json_schema(node):
    """OpenAPI 3.0's schema objects as JSON Schema: `nullable: true` becomes a `null` type, as
    schemathesis reads it (Draft 4 knows no `nullable`)."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True and isinstance(node.get("type"), str):
        converted["type"] = [node["type"], "null"]
    return converted


def main() -> int:
    spec_url, *hars = sys.argv[1:]
    with urllib.request.urlopen(spec_url) as response:
        spec = json_schema(json.load(response))
    stream = spec["paths"]["/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]["schema"]

    def validator(schema):
        return jsonschema_rs.Draft4Validator(
            {**schema, "components": spec["components"]}, validate_formats=True, ignore_unknown_formats=True
        )

    item = validator(stream["items"])
    data_schema = spec["components"]["schemas"][stream["items"]["$ref"].rsplit("/", 1)[1]]
    # The schema of each event's data, by the event's name: the discriminator's mapping.
    schemas = {name: ref.rsplit("/", 1)[1] for name, ref in data_schema["discriminator"]["mapping"].items()}
    by_name = {name: validator({"$ref": ref}) for name, ref in data_schema["discriminator"]["mapping"].items()}

    checked, responses, failures = 0, 0, []
    for har in hars:
        with open(har, encoding="utf-8") as file:
            entries = json.load(file)["log"]["entries"]
        for entry in entries:
            request, answer = entry["request"], entry["response"]
            if request["method"] != "GET" or not re.search(r"/events/?(\?|$)", request["url"]) or answer["status"] != 200:
                continue
            text = answer.get("content", {}).get("text") or ""
            previous = None
            found = False
            for name, event_id, data in events(text):
                found = True
                checked += 1
                where = f"{request['url']} ({har}): event {name} {event_id}"
                if name not in by_name:
                    failures.append(f"{where}: a name the spec does not give")
                    continue
                if not re.fullmatch(r"[0-9]+", event_id):
                    failures.append(f"{where}: the id is not an integer")
                elif previous is not None and int(event_id) <= previous:
                    failures.append(f"{where}: the id does not grow (after {previous})")
                else:
                    previous = int(event_id)
                try:
                    value = json.loads(data)
                except ValueError as error:
                    failures.append(f"{where}: data is not JSON: {error}")
                    continue
                if not isinstance(value, dict) or value.get("type") != name:
                    failures.append(f"{where}: the data's `type` is not the event's name")
                for schema, check in ((schemas[name], by_name[name]), ("EventData", item)):
                    errors = [error.message for error in check.iter_errors(value)]
                    if errors:
                        failures.append(f"{where}: data is not a valid {schema}: {'; '.join(errors)}")
            responses += found
    print(f"{checked} events in {responses} responses of GET /events checked against the spec")
    for failure in failures:
        print(failure, file=sys.stderr)
    if checked == 0:
        print("no response of GET /events carried an event: nothing was checked", file=sys.stderr)
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
