"""The site's pages, one module each: a page takes the request's catalog (and, for the pages with
the filter form, its parameters and the command line's selection) and gives a Response."""
