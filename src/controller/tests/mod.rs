//! Unit tests of the controller decisions.
