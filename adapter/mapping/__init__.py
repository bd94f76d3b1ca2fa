"""Raw model outputs -> friendly results: labels, scores, boxes in pixels."""
