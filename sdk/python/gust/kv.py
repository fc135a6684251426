"""Key-value stores (``wasi:keyvalue@0.2.0-draft2``).

The manifest grants stores by name (``key_value_stores = ["default"]``)::

    from gust import kv

    store = kv.open("default")
    store.set("greeting", b"hello")
    store.get("greeting")          # b"hello" (None when absent)
    store.increment("visits", 1)   # atomic; the new value
"""

from typing import List, Optional, Union

from componentize_py_types import Err
from wit_world.imports import atomics
from wit_world.imports import wasi_keyvalue_store as store


class KvError(Exception):
    """A store operation failed: no such store, access denied, or other."""


def _error(e: Err) -> KvError:
    value = e.value
    if isinstance(value, store.Error_NoSuchStore):
        return KvError("no such store")
    if isinstance(value, store.Error_AccessDenied):
        return KvError("access denied (is the store in key_value_stores?)")
    return KvError(getattr(value, "value", None) or str(value))


class Store:
    """An open store. Values are bytes; ``set`` also takes a str."""

    def __init__(self, bucket: store.Bucket):
        self._bucket = bucket

    def get(self, key: str) -> Optional[bytes]:
        try:
            return self._bucket.get(key)
        except Err as e:
            raise _error(e) from None

    def set(self, key: str, value: Union[bytes, str]) -> None:
        if isinstance(value, str):
            value = value.encode("utf-8")
        try:
            self._bucket.set(key, value)
        except Err as e:
            raise _error(e) from None

    def delete(self, key: str) -> None:
        try:
            self._bucket.delete(key)
        except Err as e:
            raise _error(e) from None

    def exists(self, key: str) -> bool:
        try:
            return self._bucket.exists(key)
        except Err as e:
            raise _error(e) from None

    def increment(self, key: str, delta: int = 1) -> int:
        """Adds ``delta`` atomically (a missing key counts from 0); the new value."""
        try:
            return atomics.increment(self._bucket, key, delta)
        except Err as e:
            raise _error(e) from None

    def keys(self) -> List[str]:
        """Every key in the store."""
        out: List[str] = []
        cursor = None
        while True:
            try:
                page = self._bucket.list_keys(cursor)
            except Err as e:
                raise _error(e) from None
            out.extend(page.keys)
            cursor = page.cursor
            if cursor is None:
                return out

    def close(self) -> None:
        self._bucket.__exit__(None, None, None)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open(name: str = "default") -> Store:
    """Opens the store ``name`` (granted in the manifest)."""
    try:
        return Store(store.open(name))
    except Err as e:
        raise _error(e) from None
