// The fixture's source, as another mutant left it: the catalog's text for
// counter-off-by-one is gone.
int next(int n) { return n - 1; }
