# rules of the heads stage (see README)
