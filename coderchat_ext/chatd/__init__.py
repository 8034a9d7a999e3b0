"""The chat daemon: the chat loop, retries, error classification and stream fan-out."""
