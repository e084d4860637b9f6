"""The network: aU-Net and its shape arithmetic, device and precision, the model folder."""
