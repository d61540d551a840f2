# rules of the plots stage (see README)
