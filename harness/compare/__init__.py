"""`halab compare`: the course notes' comparison table of Active-Active and Active-Standby, each
row measured. `plan` says what runs, `runner` runs it (fresh labs through the scenarios),
`figures` turns result files into each architecture's figures, `table` into the notes' rows with
a verdict (in Korean or English, from text.toml), and `page` into plots and an HTML page.
"""
