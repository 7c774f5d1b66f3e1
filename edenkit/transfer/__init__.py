"""Transfer: fine-tuning for segmentation and classification, and the few-shot protocol."""
