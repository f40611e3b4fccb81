# Type stub of the optional native decoder (native/src/lib.rs), built by pip when cargo is on the PATH.
def feature_columns(
    records: list[bytes], names: list[str], numeric: list[bool], max_bytes: int
) -> tuple[bytearray, list[list[str | None]], list[int]]: ...
