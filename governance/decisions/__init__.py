"""Model decisions: the decision service (:mod:`governance.decisions.service`) and human
review of them (:mod:`governance.decisions.reviews`)."""
