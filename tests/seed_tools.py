"""Tool definitions the bundled seed cassettes were recorded with, for tests that act as the client."""

#: The flat (Realtime, not Chat Completions) tool of the function_call and missing_call_id seeds.
FLAT_TOOL = {
    "type": "function",
    "name": "list_emails",
    "description": "List the user's most recent emails, newest first.",
    "parameters": {"type": "object", "properties": {"numEmails": {"type": "integer"}}, "required": ["numEmails"]},
}
