//go:build !linux

package main

// stopWithParent does nothing outside Linux.
func stopWithParent() {}
