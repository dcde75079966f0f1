"""The HTTP and HTTPS listener: a starlette app served by uvicorn in the mail server's process."""
