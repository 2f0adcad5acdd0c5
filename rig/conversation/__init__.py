"""Conversation state shared by the mock and the gateway: stored responses, the
connection-local cache, ``previous_response_id`` resolution, tool-call pairing, ownership."""
