"""llama-server's own routes through the gateway: /completion, /tokenize, /detokenize, /apply-template, /infill,
rerank, /props, /slots, and /upstream/{model}/{path} for anything else."""
