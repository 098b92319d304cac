module github.com/weightbus/weightbus/bindings/go

go 1.19
