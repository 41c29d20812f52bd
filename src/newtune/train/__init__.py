"""Training: batches (collate), the token-summed loss, and the loop that drives them."""
