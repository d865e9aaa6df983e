import os

import torch

# Without a GPU, Triton kernels run in its interpreter; the variable must be set before the
# kernels are decorated, i.e. before dynconv_nlp.ops.triton is first imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
