"""OpenAI's Responses API over the text service: a conversation of typed items in, typed output
items and streamed events out, stored durably so `previous_response_id` survives a restart.

`conversation` turns items into chat messages, `output` builds output items and response objects,
`turn` runs one generation into items and events, `service` ties them to storage and retrieval.
"""
