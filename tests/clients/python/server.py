"""The server under test: its address, and channels to it."""

import os

import grpc


def address() -> str:
    """The address of the server under test, `host:port`, from `ACCESSD_ADDRESS`."""
    value = os.environ.get("ACCESSD_ADDRESS")
    if not value:
        raise RuntimeError(
            "ACCESSD_ADDRESS is not set: run these tests through `cargo test --test clients`, "
            "or set it to the host:port of a fresh `accessd serve`"
        )
    return value


def channel(options: tuple[tuple[str, str], ...] = ()) -> grpc.Channel:
    """A plaintext channel to the server under test, with these channel options."""
    return grpc.insecure_channel(address(), options=list(options))
