# Type stub of the optional native detector kernels (native/kernels/src/lib.rs), built by pip when cargo
# is on the PATH.
import numpy as np

def mid_ranks(refs: list[np.ndarray], x: np.ndarray, out: np.ndarray) -> None: ...
def cusum_update(
    inc: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    run_start: np.ndarray,
    h: np.ndarray,
    first_row: int,
    scale: float,
) -> tuple[int, int, int] | None: ...
