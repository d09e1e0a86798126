module example.com/overseerd-go-example

go 1.19
