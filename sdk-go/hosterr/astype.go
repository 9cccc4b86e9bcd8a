package hosterr

// AsType finds the first error in err's chain that is a T, as errors.As does, and returns it.
//
// It exists for TinyGo: errors.As asks the reflect package whether the target's type implements
// error (Type.Implements, Type.AssignableTo with an interface), which TinyGo cannot answer at run
// time in a program that also uses encoding/json (the reconcile panics with "reflect:
// unimplemented: AssignableTo with interface"). AsType only uses type assertions, so it works with
// TinyGo and with the standard toolchain alike. The chain is walked depth-first through
// Unwrap() error and Unwrap() []error, the order errors.As uses. Go 1.26's errors.AsType has the
// same signature; prefer this one while operators are built with TinyGo.
//
//	if se, ok := hosterr.AsType[*hosterr.StatusError](err); ok { ... se.Status ... }
func AsType[T error](err error) (T, bool) {
	for err != nil {
		if match, ok := err.(T); ok {
			return match, true
		}
		switch wrapper := err.(type) {
		case interface{ Unwrap() error }:
			err = wrapper.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range wrapper.Unwrap() {
				if match, ok := AsType[T](inner); ok {
					return match, true
				}
			}
			return *new(T), false
		default:
			return *new(T), false
		}
	}
	return *new(T), false
}
