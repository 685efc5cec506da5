"""A prelude for subprocess scripts of the tests: every import of torch fails from here on."""

import textwrap

BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is not available here (test)")
            return None

    sys.meta_path.insert(0, NoTorch())
""")
