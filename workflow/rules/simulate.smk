# rules of the simulate stage (see README)
