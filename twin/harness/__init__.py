"""The CUDA workload harness (optional extra ``harness``): a real PyTorch decode loop with NVML energy."""
