"""The Streamlit what-if dashboard (optional extra ``dashboard``)."""
