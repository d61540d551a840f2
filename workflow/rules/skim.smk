# rules of the skim stage (see README)
