"""A git repository in, the commit list, file trees and blob bytes of its history out."""
