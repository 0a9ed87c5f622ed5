package policy

import "unicode"

// Category is one of the five character categories of Microsoft's
// "Passwords must meet complexity requirements". The values are stable.
type Category string

// The five categories, in Microsoft's order.
const (
	// CategoryUppercase: uppercase letters (A-Z, accented, Greek, Cyrillic, ...).
	CategoryUppercase Category = "uppercase"
	// CategoryLowercase: lowercase letters (a-z, sharp-s, accented, Greek, Cyrillic, ...).
	CategoryLowercase Category = "lowercase"
	// CategoryDigit: the base-10 digits 0-9 (ASCII only).
	CategoryDigit Category = "digit"
	// CategorySymbol: the 32 ASCII symbols ~!@#$%^&*_-+=`|\(){}[]:;"'<>,.?/ only.
	CategorySymbol Category = "symbol"
	// CategoryOtherLetter: alphabetic characters that are neither uppercase nor
	// lowercase (CJK, Hebrew, Arabic, Thai, ...).
	CategoryOtherLetter Category = "other_letter"
)

// Categories lists the five categories in Microsoft's order.
var allCategories = [5]Category{CategoryUppercase, CategoryLowercase, CategoryDigit, CategorySymbol, CategoryOtherLetter}

// AllCategories returns the five categories in Microsoft's order.
func AllCategories() []Category { return append([]Category(nil), allCategories[:]...) }

// ComplexityMinCategories is how many of the five categories a password needs.
const ComplexityMinCategories = 3

// categoryNone means the character counts towards no category (space, control
// characters, currency and other non-ASCII symbols, emoji, combining marks
// that are not alphabetic, non-ASCII digits).
const categoryNone = -1

// asciiSymbols is Microsoft's list of non-alphanumeric characters. It is
// exactly the 32 printable ASCII characters that are neither letters, digits
// nor space.
const asciiSymbols = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/"

// categoryOf returns the index into allCategories of r's category, or
// categoryNone.
//
// How the Unicode categories are decided (Microsoft's text names examples,
// not tables, so the choice is ours and is this):
//   - uppercase: Unicode's derived property Uppercase (general category Lu
//     plus Other_Uppercase), in every script. Microsoft says "European
//     languages"; the few cased letters of other scripts (Armenian, Georgian,
//     Cherokee, Adlam, ...) are not "neither uppercase nor lowercase", so they
//     cannot be category 5, and we count them as upper/lower rather than as
//     nothing.
//   - lowercase: Unicode's Lowercase (Ll plus Other_Lowercase), every script;
//     this includes sharp-s and the ordinal indicators.
//   - other letter: Unicode's Alphabetic (L*, Nl, Other_Alphabetic) that is
//     neither Uppercase nor Lowercase: Lo (CJK, Arabic, Hebrew, Thai, ...),
//     Lm, titlecase letters such as U+01C5, and alphabetic combining marks.
//   - digit: only ASCII 0-9; other decimal digits count for nothing.
//   - symbol: only the 32 ASCII characters of asciiSymbols; currency signs
//     (EUR, GBP, ...), other punctuation, space and emoji count for nothing.
func categoryOf(r rune) int {
	if r < 0x80 {
		switch {
		case 'A' <= r && r <= 'Z':
			return 0
		case 'a' <= r && r <= 'z':
			return 1
		case '0' <= r && r <= '9':
			return 2
		case r > ' ' && r < 0x7f:
			return 3 // every other printable ASCII character is in asciiSymbols
		}
		return categoryNone
	}
	switch {
	case unicode.IsUpper(r) || unicode.Is(unicode.Other_Uppercase, r):
		return 0
	case unicode.IsLower(r) || unicode.Is(unicode.Other_Lowercase, r):
		return 1
	case unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_Alphabetic, r):
		return 4
	}
	return categoryNone
}

// CategoryOf reports which complexity category r belongs to; ok is false when
// it belongs to none.
func CategoryOf(r rune) (c Category, ok bool) {
	i := categoryOf(r)
	if i == categoryNone {
		return "", false
	}
	return allCategories[i], true
}
