"""Privacy rights over the person's data (PIPL): ``consent`` (Art. 14, 15, 24), ``export`` (Art. 45),
``erasure`` (Art. 47), ``retention`` (Art. 19); ``lake`` erases from the journey lake."""
