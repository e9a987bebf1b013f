"""Method codes shared by every backend (the CUDA sources use the same numbers)."""

EDSCW = 0  # weights softmax(dsc(x_i, mean))
EM = 1  # weights softmax(x_i)  (SoftPool)
IDW = 2  # inverse distance to the mean
ADA = 3  # clamp(beta) * EDSCW + (1 - clamp(beta)) * EM

METHOD_CODES = {"edscwpool": EDSCW, "empool": EM, "idwpool": IDW, "adapool": ADA}
