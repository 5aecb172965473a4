module github.com/breachwatch/breachwatch

go 1.26.8
