"""Small tools the reference's launch scripts call (`python -m prompt_tuning.scripts.<tool>`)."""
